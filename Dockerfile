# salescast as a container: python:3.11-slim, installed from the same pins as
# `make install` (requirements.lock as constraints), run as a non-root user.
# deploy/compose.yaml runs it with Redis, PostgreSQL, Prometheus and Grafana.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin salescast

WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
RUN pip install --constraint requirements.lock . && rm -rf /src

# The working folder holds the SQLite store when SALESCAST_DATABASE_URL is not
# set; it belongs to the unprivileged user.
USER salescast
WORKDIR /home/salescast

# Listen on every interface inside the container (the default is 127.0.0.1).
ENV SALESCAST_HOST=0.0.0.0 \
    SALESCAST_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

CMD ["salescast", "serve", "--workers", "2"]
