FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iotledger ./iotledger
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home iotledger \
    && mkdir var && chown iotledger var
USER iotledger
ENV IOTLEDGER_HOST=0.0.0.0
# 8080: the HTTP API; 9100: /metrics of a role without it (IOTLEDGER_METRICS_PORT).
EXPOSE 8080 9100
CMD ["iotledger", "serve"]
