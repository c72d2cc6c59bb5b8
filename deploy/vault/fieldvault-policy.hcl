# fieldvault service policy: least privilege on one Transit key.
#
# The service wraps, unwraps and rewraps its keysets with the key and reads
# the key's metadata at start. It cannot create, rotate, configure, export,
# back up or delete the key. Encrypt is granted "update" only, never
# "create": Transit's encrypt creates a missing key ("upsert") only for a
# token allowed to create, so a typo in the key name fails instead of
# silently making a new key.
#
# Written for mount "transit" and key "fieldvault"; setup.sh rewrites both
# when FIELDVAULT_TRANSIT_MOUNT or FIELDVAULT_TRANSIT_KEY say otherwise.

path "transit/encrypt/fieldvault" {
  capabilities = ["update"]
}

path "transit/decrypt/fieldvault" {
  capabilities = ["update"]
}

path "transit/rewrap/fieldvault" {
  capabilities = ["update"]
}

path "transit/keys/fieldvault" {
  capabilities = ["read"]
}

# Token upkeep, so the policy works without Vault's "default" policy.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
