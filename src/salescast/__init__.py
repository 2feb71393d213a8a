"""salescast: sales forecasting with one Prophet model per product and a two-tier cache."""

__version__ = "0.1.0"
