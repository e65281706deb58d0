# One image for the web server, the Celery worker and the inference worker.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRIAGE_VAR_DIR=/app/var TRIAGE_MODEL_CACHE=/models
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install -r requirements.txt && pip install --no-deps -r requirements-nodeps.txt
COPY . .
RUN useradd --create-home triage && mkdir -p /app/var /models && chown triage /app/var /models
USER triage
EXPOSE 8000
CMD ["python", "-m", "daphne", "-b", "0.0.0.0", "-p", "8000", "triage_site.asgi:application"]
