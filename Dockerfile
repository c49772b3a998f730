FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iotledger ./iotledger
RUN pip install --no-cache-dir . && useradd --system iotledger
USER iotledger
EXPOSE 8080
CMD ["iotledger", "serve"]
