# stellarflow in a container:
#   docker build -t stellarflow .
#   docker run --rm -p 8080:8080 -v $(pwd)/config:/app/config stellarflow -c /app/config/websocket.yaml
FROM python:3.11-slim

RUN useradd --system --create-home --home-dir /var/lib/stellarflow --uid 10001 stellarflow

WORKDIR /app
COPY setup.cfg setup.py README.md ./
COPY stellarflow ./stellarflow
COPY twisted ./twisted
COPY config ./config
# Install, then let Twisted write its plugin cache while we are still root.
RUN pip install --no-cache-dir . \
    && python -c "from twisted.plugin import IPlugin, getPlugins; import twisted.plugins; list(getPlugins(IPlugin, twisted.plugins))"

USER stellarflow
# Checkpoints (state_dir, relative by default) land in the user's home.
WORKDIR /var/lib/stellarflow
EXPOSE 8080
VOLUME ["/app/config"]

# The runner, not twistd, so that a failed pipeline exits 1 and SIGTERM 0 (docs/operations.md).
ENTRYPOINT ["stellarflow"]
CMD ["-c", "/app/config/websocket.yaml"]
