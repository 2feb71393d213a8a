"""The bundled demo dataset: two years of five Walmart store-department series from M5.

Source: M5 Forecasting competition (Kaggle, 2020), summed per store and
department by the `Stelovpflu/m5-forecasting-app` repository; rows from
2014-04-25 to 2016-04-24 for CA_1-FOODS_3, CA_1-HOBBIES_1, CA_3-FOODS_3,
TX_2-HOUSEHOLD_1 and WI_3-FOODS_2, values unchanged (zero-sales days are
missing upstream, which the demo keeps as real gaps).
"""

from __future__ import annotations

from importlib import resources

from salescast.store.ingest import ColumnSpec

DEMO_COLUMNS = ColumnSpec(date="date", product=("store_id", "dept_id"), quantity="sales")


def read_demo_csv() -> bytes:
    """The demo CSV as bytes (columns store_id, dept_id, date, sales)."""
    return resources.files(__package__).joinpath("m5_demo.csv").read_bytes()
