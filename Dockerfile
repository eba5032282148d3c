# smartseg worker image: `smartseg run` as a non-root user. Configuration comes from a mounted
# folder (SMARTSEG_CONFIG) and secrets from the environment or mounted files named in it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 smartseg \
 && useradd --system --uid 10001 --gid smartseg --create-home --home-dir /home/smartseg smartseg

WORKDIR /opt/smartseg
COPY pyproject.toml README.md ./
COPY config ./config
COPY smartseg ./smartseg
RUN pip install . && rm -rf /opt/smartseg/build

# The shipped example config; mount your own folder over /etc/smartseg in production.
COPY config /etc/smartseg

USER smartseg
WORKDIR /home/smartseg
RUN mkdir -p /home/smartseg/data
# SMARTSEG_HEALTH_HOST/PORT override worker.health_host/health_port: listen on every interface
# so Prometheus can scrape /metrics from outside; the HEALTHCHECK asks the same port locally.
# Several replicas may share one PostgreSQL database (SMARTSEG_DATABASE_URL); job leases make
# each firing run once. SMARTSEG_REPLICA_ID names a replica in leases (default: host:pid).
ENV SMARTSEG_CONFIG=/etc/smartseg/smartseg.yaml \
    SMARTSEG_DATABASE_URL=sqlite:////home/smartseg/data/smartseg.db \
    SMARTSEG_LOG_FORMAT=json \
    SMARTSEG_HEALTH_HOST=0.0.0.0 \
    SMARTSEG_HEALTH_PORT=9464
VOLUME ["/home/smartseg/data"]
EXPOSE 9464

# 200 while the scheduler runs and no job's latest run failed; 503 (or no answer) otherwise.
# No curl in slim images: Python's urllib raises on a 503 or a refused connection.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SMARTSEG_HEALTH_PORT', '9464'), timeout=3)"]

# SIGTERM (docker stop) lets the running step finish, releases job leases and exits 0; give a
# pull time to finish its step, e.g. `docker stop -t 120` or stop_grace_period in compose.
STOPSIGNAL SIGTERM
CMD ["smartseg", "run"]
