#!/usr/bin/env bash
# setup.sh: prepare HashiCorp Vault or OpenBao for fieldvault's Transit KEK.
#
# Idempotent; run it again at any time. It
#   1. enables the Transit secrets engine at $FIELDVAULT_TRANSIT_MOUNT
#      (default "transit") if nothing is mounted there,
#   2. creates the key $FIELDVAULT_TRANSIT_KEY (default "fieldvault") as a
#      non-exportable aes256-gcm96 key without plaintext backup, or checks
#      that the existing key is one, and sets deletion_allowed=false,
#   3. writes the ACL policies "fieldvault" and "fieldvault-security" from
#      fieldvault-policy.hcl and fieldvault-security-policy.hcl beside this
#      script, with the mount and key names filled in,
#   4. prints how to create a periodic token for the service.
#
# Needs bash and curl, nothing else (no vault CLI, no jq).
#
# Environment:
#   VAULT_ADDR        required, e.g. https://vault.internal:8200
#   VAULT_TOKEN       required; a token that may manage mounts, Transit keys
#                     and ACL policies (an administrator's, not fieldvault's)
#   VAULT_NAMESPACE   optional (Vault Enterprise, OpenBao namespaces)
#   VAULT_CACERT      optional PEM file to verify Vault's TLS certificate
#   FIELDVAULT_TRANSIT_MOUNT     default "transit"
#   FIELDVAULT_TRANSIT_KEY       default "fieldvault"
#   FIELDVAULT_POLICY            default "fieldvault"
#   FIELDVAULT_SECURITY_POLICY   default "fieldvault-security"
#
# The token reaches curl through a mode-0600 header file, never a command
# line, so other local users cannot read it from the process list.

set -euo pipefail

die() {
	printf 'setup.sh: error: %s\n' "$*" >&2
	exit 1
}
say() { printf 'setup.sh: %s\n' "$*"; }

[[ -n ${VAULT_ADDR:-} ]] || die "VAULT_ADDR is not set"
[[ -n ${VAULT_TOKEN:-} ]] || die "VAULT_TOKEN is not set"
command -v curl >/dev/null 2>&1 || die "curl is required"

addr=${VAULT_ADDR%/}
mount=${FIELDVAULT_TRANSIT_MOUNT:-transit}
mount=${mount#/}
mount=${mount%/}
key=${FIELDVAULT_TRANSIT_KEY:-fieldvault}
policy=${FIELDVAULT_POLICY:-fieldvault}
security_policy=${FIELDVAULT_SECURITY_POLICY:-fieldvault-security}

name_re='^[A-Za-z0-9_]([A-Za-z0-9_.@-]*[A-Za-z0-9_])?$'
[[ $addr =~ ^https?://[^/@]+$ ]] || die "VAULT_ADDR must be http(s)://host[:port] without credentials or a path"
[[ $mount =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$ ]] || die "invalid Transit mount: $mount"
[[ $key =~ $name_re ]] || die "invalid Transit key name: $key"
[[ $policy =~ $name_re ]] || die "invalid policy name: $policy"
[[ $security_policy =~ $name_re ]] || die "invalid policy name: $security_policy"

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
service_hcl=$here/fieldvault-policy.hcl
security_hcl=$here/fieldvault-security-policy.hcl
[[ -r $service_hcl && -r $security_hcl ]] || die "policy files not found beside $0"

umask 077
workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
headers=$workdir/headers
{
	printf 'X-Vault-Token: %s\n' "$VAULT_TOKEN"
	printf 'X-Vault-Request: true\n'
	if [[ -n ${VAULT_NAMESPACE:-} ]]; then
		printf 'X-Vault-Namespace: %s\n' "$VAULT_NAMESPACE"
	fi
} >"$headers"

curl_opts=(--silent --show-error --max-time 30 --header "@$headers")
if [[ -n ${VAULT_CACERT:-} ]]; then
	curl_opts+=(--cacert "$VAULT_CACERT")
fi

status=
# api METHOD PATH [JSON]: calls Vault; sets $status and leaves the response
# body in $workdir/body.
api() {
	local method=$1 path=$2 data=${3:-}
	local args=("${curl_opts[@]}" --request "$method" --output "$workdir/body" --write-out '%{http_code}')
	: >"$workdir/body"
	if [[ -n $data ]]; then
		printf '%s' "$data" >"$workdir/request"
		args+=(--header 'Content-Type: application/json' --data-binary "@$workdir/request")
	fi
	status=$(curl "${args[@]}" "$addr/v1/$path") || die "cannot reach Vault at $addr"
}

# body_has ERE: whether the last response body matches (Vault writes compact
# JSON).
body_has() { grep -Eq -- "$1" "$workdir/body"; }

# fail MESSAGE: dies with the last status and Vault's error messages.
fail() {
	local errors
	errors=$(sed -n 's/.*"errors":\[\(.*\)\].*/\1/p' "$workdir/body" | cut -c1-300)
	die "$1 (HTTP $status${errors:+: $errors})"
}

# json_string: stdin as one JSON string.
json_string() {
	local s
	s=$(
		cat
		printf x
	)
	s=${s%x}
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	s=${s//$'\n'/\\n}
	printf '"%s"' "$s"
}

# render FILE: a policy file with the mount and key names filled in.
render() {
	sed -e "s#\"transit/\([a-z]*\)/fieldvault\([\"/]\)#\"$mount/\1/$key\2#" "$1"
}

# 0. The token works and Vault is unsealed.
api GET auth/token/lookup-self
case $status in
200) ;;
403) fail "Vault at $addr refused VAULT_TOKEN" ;;
503) fail "Vault at $addr is sealed or unavailable" ;;
*) fail "token lookup at $addr failed" ;;
esac

# 1. The Transit mount.
api GET "sys/mounts/$mount"
if [[ $status == 200 ]]; then
	body_has '"type": ?"transit"' || die "$mount/ is mounted but is not a Transit secrets engine"
	say "Transit is already enabled at $mount/"
else
	api POST "sys/mounts/$mount" '{"type":"transit","description":"fieldvault key-encryption key"}'
	[[ $status == 200 || $status == 204 ]] || fail "enabling Transit at $mount/ failed"
	say "enabled Transit at $mount/"
fi

# 2. The key.
api GET "$mount/keys/$key"
case $status in
200)
	body_has '"type": ?"aes256-gcm96"' || die "key $mount/$key exists but is not aes256-gcm96; choose another FIELDVAULT_TRANSIT_KEY"
	body_has '"derived": ?false' || die "key $mount/$key is a derived key; fieldvault needs a non-derived one"
	body_has '"exportable": ?false' || die "key $mount/$key is exportable, which Transit cannot undo; choose another FIELDVAULT_TRANSIT_KEY"
	say "key $mount/$key already exists"
	;;
404)
	api POST "$mount/keys/$key" '{"type":"aes256-gcm96","exportable":false,"allow_plaintext_backup":false}'
	[[ $status == 200 || $status == 204 ]] || fail "creating key $mount/$key failed"
	say "created key $mount/$key (aes256-gcm96, not exportable, no plaintext backup)"
	;;
*) fail "reading key $mount/$key failed" ;;
esac
api POST "$mount/keys/$key/config" '{"deletion_allowed":false}'
[[ $status == 200 || $status == 204 ]] || fail "setting deletion_allowed=false on $mount/$key failed"
say "key $mount/$key: deletion_allowed=false"

# 3. The policies.
for pair in "$policy:$service_hcl" "$security_policy:$security_hcl"; do
	name=${pair%%:*}
	file=${pair#*:}
	rendered=$(render "$file" | json_string)
	api PUT "sys/policies/acl/$name" "{\"policy\":$rendered}"
	[[ $status == 200 || $status == 204 ]] || fail "writing policy $name failed"
	say "wrote policy $name from $(basename -- "$file")"
done

# 4. What to do next.
cat <<EOF

Done. Now create fieldvault's token. A periodic token never expires while
fieldvault renews it (it does, in the background); creating one needs a root
or sudo token:

  vault token create -orphan -policy=$policy -period=24h -display-name=fieldvault

or, so that operators without sudo can mint it, a token role made once:

  vault write auth/token/roles/fieldvault allowed_policies=$policy orphan=true renewable=true token_period=24h
  vault token create -role=fieldvault

(With OpenBao, run bao instead of vault.) Give the token to fieldvault as
VAULT_TOKEN or in a token file, and start it with

  VAULT_ADDR=$addr fieldvault serve --kek=transit --transit-mount=$mount --transit-key=$key

The security team's token for fieldvault keys rotate-kek:

  vault token create -policy=$security_policy -ttl=1h
EOF
