# backend-bot: the webhook server and its workers in one image.
#
#   docker build -t backend-bot .
#   docker run -p 3000:3000 -v backend-bot-data:/data \
#       --security-opt seccomp=unconfined --security-opt apparmor=unconfined backend-bot
#
# then open http://localhost:3000/ to register the GitHub App (its credentials land in
# /data/.env, on the volume), or pass APP_ID, PRIVATE_KEY, WEBHOOK_SECRET and
# ANTHROPIC_API_KEY as environment variables. The security options let bubblewrap create the
# agent's sandbox (Docker's default seccomp profile forbids user namespaces). See compose.yaml
# to scale out with PostgreSQL.

# Python 3.11: the version the test suite runs on (scripts/check_pythons starts the bot on 3.12
# and 3.13 as well).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git for the mirrors and workspaces, bubblewrap for the agent's sandboxed shell,
# ripgrep for its Grep tool; slirp4netns, nftables and iproute2 give `network: true`
# repositories the internet without the bot's host (SECURITY.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap ripgrep ca-certificates \
       slirp4netns nftables iproute2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group --shell /bin/bash backend

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY prompts ./prompts
RUN pip install . && rm -rf build

# app.yml is read from the working directory by the registration page. `.env` (read from the
# working directory too) points into the data volume, where registration writes it.
COPY app.yml ./
RUN mkdir -p /data && chown backend:backend /data && ln -s /data/.env /app/.env

ENV BOT_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000
VOLUME ["/data"]
USER backend
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["backend-bot", "serve"]
