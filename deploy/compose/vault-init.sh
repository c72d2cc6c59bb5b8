#!/usr/bin/env bash
# vault-init.sh: the one-shot "vault-init" service of deploy/compose.yaml.
#
# 1. Runs deploy/vault/setup.sh (mounted at $SETUP) against the Vault dev
#    server: Transit mount, the non-exportable key, the two ACL policies.
# 2. Creates fieldvault's service token with the fixed id $SERVICE_TOKEN,
#    holding only the "fieldvault" policy, periodic (24h; fieldvault renews
#    it), unless a token with that id exists already.
#
# Fixed token ids are a dev-server convenience for compose, where fieldvault
# reads VAULT_TOKEN from its environment. Never do this against a real Vault:
# there, mint the token with `vault token create -orphan -policy=fieldvault
# -period=24h` and hand it over as a secret (see deploy/README.md).
#
# Environment: VAULT_ADDR, VAULT_TOKEN (the dev root token), SERVICE_TOKEN,
# SETUP (default /vault-setup/setup.sh).
set -euo pipefail

die() {
	printf 'vault-init: error: %s\n' "$*" >&2
	exit 1
}

[[ -n ${VAULT_ADDR:-} ]] || die "VAULT_ADDR is not set"
[[ -n ${VAULT_TOKEN:-} ]] || die "VAULT_TOKEN is not set"
[[ -n ${SERVICE_TOKEN:-} ]] || die "SERVICE_TOKEN is not set"
[[ $SERVICE_TOKEN =~ ^[A-Za-z0-9_-]+$ ]] || die "SERVICE_TOKEN may hold only letters, digits, '-' and '_'"
setup=${SETUP:-/vault-setup/setup.sh}
policy=${FIELDVAULT_POLICY:-fieldvault}

# The dev server needs a moment after its healthcheck passes on slow hosts.
for _ in $(seq 30); do
	curl --silent --fail --max-time 2 "${VAULT_ADDR%/}/v1/sys/health" >/dev/null && break
	sleep 1
done

bash "$setup"

umask 077
workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
printf 'X-Vault-Token: %s\nX-Vault-Request: true\n' "$VAULT_TOKEN" >"$workdir/headers"

# call METHOD PATH JSON: prints the HTTP status; the body goes to $workdir/body.
call() {
	printf '%s' "$3" >"$workdir/request"
	curl --silent --show-error --max-time 10 --header "@$workdir/headers" \
		--header 'Content-Type: application/json' --request "$1" \
		--data-binary "@$workdir/request" --output "$workdir/body" --write-out '%{http_code}' \
		"${VAULT_ADDR%/}/v1/$2"
}

status=$(call POST auth/token/lookup "{\"token\":\"$SERVICE_TOKEN\"}")
if [[ $status == 200 ]]; then
	grep -q "\"$policy\"" "$workdir/body" || die "token $SERVICE_TOKEN exists without the $policy policy"
	echo "vault-init: service token already exists"
	exit 0
fi
status=$(call POST auth/token/create-orphan \
	"{\"id\":\"$SERVICE_TOKEN\",\"policies\":[\"$policy\"],\"no_default_policy\":true,\"period\":\"24h\",\"display_name\":\"fieldvault\"}")
[[ $status == 200 ]] || die "creating the service token failed (HTTP $status): $(head -c 300 "$workdir/body")"
echo "vault-init: created the service token (policy $policy, period 24h)"
