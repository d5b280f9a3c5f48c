# hubspot-forwarder: one replica. Build: docker build -t hubspot-forwarder .
# Run: docker run -p 8080:8080 -v fwd-data:/data -v ./forwarder.toml:/etc/forwarder/forwarder.toml:ro hubspot-forwarder
FROM python:3.12-slim AS build
WORKDIR /src
# The lock first (its layer is cached while only the code changes): exact versions with hashes,
# the redis and granian extras included, and the build backend for the install below.
COPY requirements/service.txt ./requirements/service.txt
RUN pip install --no-cache-dir --prefix=/install -r requirements/service.txt \
    && pip install --no-cache-dir -r requirements/service.txt
COPY pyproject.toml README.md ./
COPY forwarder ./forwarder
COPY schemas ./schemas
RUN pip install --no-cache-dir --prefix=/install --no-deps --no-build-isolation .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
# A non-root user owns the data directory, where the SQLite file lives (storage.url =
# "sqlite:////data/forwarder.db"); with Redis storage the volume stays empty.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin forwarder \
    && mkdir -p /data /etc/forwarder && chown forwarder /data
USER forwarder
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers while the process lives; /readyz also checks that storage takes writes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["forwarder"]
CMD ["serve", "--config", "/etc/forwarder/forwarder.toml"]
