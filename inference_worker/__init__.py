"""The dedicated inference process: semantic scheduling and continuous batching over an LLM.

`python -m inference_worker` runs it. `engine` and `models` know torch and the
scheduler; `store` is the only module that talks to Django.
"""
