# Hugging Face Docker Space (also runs anywhere Docker does): python app.py on port 7860, as user 1000.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1

# /data owned by the user: a Docker volume mounted there (docker-compose.yml) starts with this ownership, so the
# history lands in it; on a Space, persistent storage is mounted over it.
RUN useradd --create-home --uid 1000 user && mkdir -p /data && chown user:user /data
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
# A CPU Space never uses CUDA: take torch's CPU-only build (a few hundred MB, not several GB) before the rest,
# so the pinned torch in requirements.txt is already satisfied.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install -r requirements.txt

COPY --chown=user . .
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface \
    HOST=0.0.0.0 \
    PORT=7860

EXPOSE 7860
CMD ["python", "app.py"]
