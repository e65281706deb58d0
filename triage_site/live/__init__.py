"""How the processes tell each other about changes: events to dashboards over the channel layer,
wake-ups to the inference worker, and `manage.py serve`, which runs web server and worker in one process."""
