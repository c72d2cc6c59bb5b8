# The one-shot vault-init service of deploy/compose.yaml: bash and curl, which
# is all deploy/vault/setup.sh and deploy/compose/vault-init.sh need.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532
ENTRYPOINT ["bash", "/vault-init/vault-init.sh"]
