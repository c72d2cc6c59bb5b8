# fieldvault security-team policy: everything the service may do with the
# Transit key, plus rotating it (fieldvault keys rotate-kek), which adds a
# key version that new wraps use while old blobs still unwrap.
#
# It still cannot configure the key (min_decryption_version), export it or
# delete it: retiring old versions stays a deliberate act by a Vault
# administrator, after the rewrap job has moved every keyset.
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

path "transit/keys/fieldvault/rotate" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
