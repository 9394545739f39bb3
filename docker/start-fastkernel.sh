#!/bin/sh
# The container's entry point: the launcher arguments that gateway_provisioners' (and Enterprise
# Gateway's) container launchers pass in the environment (EG_* are Enterprise Gateway's older
# names), given to fastkernel in launcher mode. Extra arguments are passed on.
set -e
: "${KERNEL_ID:?KERNEL_ID is not set: this image is started by a gateway's container launcher}"
exec python -m fastkernel \
  --kernel-id "${KERNEL_ID}" \
  --response-address "${RESPONSE_ADDRESS:-${EG_RESPONSE_ADDRESS}}" \
  --public-key "${PUBLIC_KEY:-${EG_PUBLIC_KEY}}" \
  --port-range "${PORT_RANGE:-${EG_PORT_RANGE:-0..0}}" \
  --transport-encryption "${TRANSPORT_ENCRYPTION:-}" \
  "$@"
