FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY schemas ./schemas
RUN uv sync --frozen --no-dev && ln -s /app/.venv/bin/risklab /usr/local/bin/risklab
ENV PATH="/app/.venv/bin:$PATH"
CMD ["risklab", "--help"]
