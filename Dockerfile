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
ENV SMARTSEG_CONFIG=/etc/smartseg/smartseg.yaml \
    SMARTSEG_DATABASE_URL=sqlite:////home/smartseg/data/smartseg.db \
    SMARTSEG_LOG_FORMAT=json
VOLUME ["/home/smartseg/data"]

CMD ["smartseg", "run"]
