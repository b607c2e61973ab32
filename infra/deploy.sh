#!/usr/bin/env bash
# Deploys the function app with the az and func CLIs (the README's "az path"; `azd up` is the other one):
#
#   AZURE_ENV_NAME=contoso-saas AZURE_LOCATION=westeurope ALERT_EMAIL=ops@contoso.example infra/deploy.sh
#
# 1. infra/register-apps.sh: the Fulfillment and sign-in app registrations (created, or checked).
# 2. az group create + az deployment group create with infra/resources.bicep: everything the app runs on.
#    (infra/main.bicep is azd's entry point, at subscription scope: it makes the resource group itself, and
#    ARM refuses it in `az deployment group create`. resources.bicep takes the same parameters and gives
#    the outputs read below.)
# 3. infra/register-apps.sh again, with the deployment's outputs: the Fulfillment app's federated credential
#    for the Function App's managed identity, and the sign-in app's redirect URI.
# 4. func azure functionapp publish: the code (only what .funcignore lets through).
# Idempotent: run it again after any change; it updates what exists.
#
# Secrets never appear on a command line. The template's parameters go in a file in a private temporary
# folder (mode 0600, deleted on exit) rather than in az's arguments, which any local user can read in the
# process list. SESSION_SECRET is made once with `openssl rand` and the sign-in app's client secret by
# register-apps.sh; both are kept in $STATE_DIR (git-ignored, never published) so that a new deployment
# does not sign every buyer out; ROTATE_SESSION_SECRET=1 / ROTATE_SSO_SECRET=1 replace them.
#
# Settings (environment):
#   AZURE_ENV_NAME         required; names the resources and the app registrations
#   AZURE_LOCATION         required; Azure region with Flex Consumption, e.g. westeurope, eastus2
#   ALERT_EMAIL            required; where alerts (dead letters, failed activations, webhook 5xx) go
#   AZURE_RESOURCE_GROUP   default rg-<AZURE_ENV_NAME>
#   AZURE_SUBSCRIPTION_ID  default: az's current subscription
#   PYTHON_VERSION         default: the template's
#   STORAGE_SKU            default: the template's (Standard_ZRS); Standard_LRS or Standard_GRS in a region
#                          without availability zones
#   STATE_DIR              default .local/azure/<AZURE_ENV_NAME>
#   PUBLISH_RETRY_DELAYS   seconds between publish attempts (default "30 60 120"): on a new app the
#                          identity's role on the deployment storage can take minutes to apply
set -euo pipefail
shopt -s inherit_errexit

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${AZURE_ENV_NAME:?set AZURE_ENV_NAME, the name of this deployment (e.g. contoso-saas)}"
: "${AZURE_LOCATION:?set AZURE_LOCATION, an Azure region with Flex Consumption (e.g. westeurope)}"
: "${ALERT_EMAIL:?set ALERT_EMAIL, the address alerts are sent to}"
AZURE_RESOURCE_GROUP=${AZURE_RESOURCE_GROUP:-rg-$AZURE_ENV_NAME}
STATE_DIR=${STATE_DIR:-$root/.local/azure/$AZURE_ENV_NAME}
PUBLISH_RETRY_DELAYS=${PUBLISH_RETRY_DELAYS:-30 60 120}
export AZURE_ENV_NAME STATE_DIR

for tool in az func openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is not installed (see the README's \"Deploying to Azure\")" >&2
    exit 1
  fi
done
subscription=()
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  subscription=(--subscription "$AZURE_SUBSCRIPTION_ID")
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A JSON string literal holding $1.
json() {
  local value=${1//\\/\\\\}
  value=${value//\"/\\\"}
  printf '"%s"' "$value"
}

# --- 1. App registrations: their ids, and the sign-in app's client secret.
"$root/infra/register-apps.sh"
while IFS='=' read -r name value; do
  case $name in
    PUBLISHER_TENANT_ID) tenant=$value ;;
    FULFILLMENT_CLIENT_ID) fulfillment_client_id=$value ;;
    SSO_CLIENT_ID) sso_client_id=$value ;;
  esac
done <"$STATE_DIR/apps.env"
: "${tenant:?}" "${fulfillment_client_id:?}" "${sso_client_id:?}"

if [ ! -s "$STATE_DIR/sso-client-secret" ]; then
  echo "The sign-in app's client secret is not in $STATE_DIR/sso-client-secret (it was made on another" \
    "machine): run again with ROTATE_SSO_SECRET=1 to add a new one." >&2
  exit 1
fi
if [ ! -s "$STATE_DIR/session-secret" ] || [ "${ROTATE_SESSION_SECRET:-}" = "1" ]; then
  openssl rand -base64 48 >"$STATE_DIR/session-secret"
fi
session_secret=$(<"$STATE_DIR/session-secret")
sso_client_secret=$(<"$STATE_DIR/sso-client-secret")

# --- 2. The resources. Every value is passed explicitly: main.parameters.json is azd's, with placeholders
# that only azd fills in.
{
  cat <<'JSON'
{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
JSON
  printf '    "environmentName": {"value": %s},\n' "$(json "$AZURE_ENV_NAME")"
  printf '    "location": {"value": %s},\n' "$(json "$AZURE_LOCATION")"
  printf '    "publisherTenantId": {"value": %s},\n' "$(json "$tenant")"
  printf '    "fulfillmentClientId": {"value": %s},\n' "$(json "$fulfillment_client_id")"
  printf '    "ssoClientId": {"value": %s},\n' "$(json "$sso_client_id")"
  printf '    "alertEmail": {"value": %s},\n' "$(json "$ALERT_EMAIL")"
  if [ -n "${PYTHON_VERSION:-}" ]; then
    printf '    "pythonVersion": {"value": %s},\n' "$(json "$PYTHON_VERSION")"
  fi
  if [ -n "${STORAGE_SKU:-}" ]; then
    printf '    "storageSku": {"value": %s},\n' "$(json "$STORAGE_SKU")"
  fi
  printf '    "ssoClientSecret": {"value": %s},\n' "$(json "$sso_client_secret")"
  printf '    "sessionSecret": {"value": %s}\n' "$(json "$session_secret")"
  printf '  }\n}\n'
} >"$work/parameters.json"
unset session_secret sso_client_secret

az group create --name "$AZURE_RESOURCE_GROUP" --location "$AZURE_LOCATION" \
  --tags "azd-env-name=$AZURE_ENV_NAME" "${subscription[@]}" -o none
echo "Deploying infra/resources.bicep to resource group $AZURE_RESOURCE_GROUP (takes a few minutes)"
# ARM does not keep the case of output names (AZURE_FUNCTION_APP_NAME may come back as azurE_FUNCTION_APP_NAME):
# take names and values as two rows and match the names without regard to case.
outputs=$(az deployment group create --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_ENV_NAME" \
  --template-file "$root/infra/resources.bicep" --parameters "@$work/parameters.json" "${subscription[@]}" \
  --query "[keys(properties.outputs), values(properties.outputs)[].value]" -o tsv)
mapfile -t output_names < <(sed -n 1p <<<"$outputs" | tr '\t' '\n')
mapfile -t output_values < <(sed -n 2p <<<"$outputs" | tr '\t' '\n')
output() {
  local i
  for i in "${!output_names[@]}"; do
    if [ "${output_names[$i],,}" = "${1,,}" ]; then
      printf '%s' "${output_values[$i]:-}"
      return 0
    fi
  done
  echo "The deployment has no output $1" >&2
  return 1
}
app=$(output AZURE_FUNCTION_APP_NAME)
hostname=$(output FUNCTION_APP_HOSTNAME)
identity_principal_id=$(output MANAGED_IDENTITY_PRINCIPAL_ID)
key_vault=$(output KEY_VAULT_NAME)
namespace=$(output SERVICEBUS_NAMESPACE)
echo "Function App $app ($hostname), Key Vault $key_vault, Service Bus $namespace"

# --- 3. What the app registrations need from the deployment.
MANAGED_IDENTITY_PRINCIPAL_ID=$identity_principal_id FUNCTION_APP_HOSTNAME=$hostname \
  "$root/infra/register-apps.sh"

# --- 4. The code. Core Tools builds remotely from requirements.txt and uploads only what .funcignore allows.
cd "$root"
for delay in $PUBLISH_RETRY_DELAYS ""; do
  if func azure functionapp publish "$app" --python; then
    break
  fi
  if [ -z "$delay" ]; then
    echo "Publishing failed; the resources are in place: run infra/deploy.sh again." >&2
    exit 1
  fi
  echo "Publishing failed (a new app's storage role can take minutes to apply); trying again in ${delay}s" >&2
  sleep "$delay"
done

cat <<DONE

Deployed $app. Check it (README, "After deploying"):
  curl -fsS https://$hostname/api/health
DONE
