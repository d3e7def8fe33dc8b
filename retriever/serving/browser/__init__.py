"""The template browser: a small local web app over a loaded index (``thoughtbank browse``, or
``thoughtbank serve --ui-port``). Needs the ``ui`` extra (Starlette, Jinja2, uvicorn)."""
