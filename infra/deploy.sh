#!/usr/bin/env bash
# Creates the Azure resources of the function app and publishes it: the README's "Deploying to Azure" as one
# script. Idempotent: re-running updates what exists. Needs `az` (logged in) and `func` (Core Tools v4).
#
#   APP=contoso-saas LOCATION=westeurope PUBLISHER_TENANT_ID=... PUBLISHER_CLIENT_ID=... \
#   SSO_CLIENT_ID=... KEY_VAULT=contoso-saas-kv infra/deploy.sh
#
# Secrets are never passed on the command line: the app reads them as Key Vault references from KEY_VAULT,
# whose secrets `fulfillment-client-secret`, `sso-client-secret` and `session-secret` must exist.
set -euo pipefail

: "${APP:?name of the function app, globally unique}"
: "${LOCATION:=westeurope}"
: "${RESOURCE_GROUP:=rg-${APP}}"
: "${PUBLISHER_TENANT_ID:?tenant of the Partner Center app}"
: "${PUBLISHER_CLIENT_ID:?application id of the single-tenant fulfillment app}"
: "${SSO_CLIENT_ID:?application id of the multitenant sign-in app}"
: "${KEY_VAULT:?Key Vault holding the secrets}"
STORAGE="st$(echo "${APP}" | tr -cd 'a-z0-9' | cut -c1-20)"
NAMESPACE="sb-${APP}"
QUEUE="saas-events"
DEADLETTER_QUEUE="saas-events-deadletter"

az group create -n "$RESOURCE_GROUP" -l "$LOCATION" -o none
az storage account create -n "$STORAGE" -g "$RESOURCE_GROUP" -l "$LOCATION" --sku Standard_ZRS \
  --min-tls-version TLS1_2 --allow-blob-public-access false -o none
az servicebus namespace create -n "$NAMESPACE" -g "$RESOURCE_GROUP" -l "$LOCATION" --sku Standard -o none
# Sessions keep each subscription's events in order; duplicate detection drops repeated webhooks.
az servicebus queue create -g "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" -n "$QUEUE" \
  --enable-session true --enable-duplicate-detection true --duplicate-detection-history-time-window PT10M \
  --max-delivery-count 10 --lock-duration PT1M --enable-dead-lettering-on-message-expiration true -o none
az servicebus queue create -g "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" -n "$DEADLETTER_QUEUE" -o none
az monitor app-insights component create -a "ai-${APP}" -g "$RESOURCE_GROUP" -l "$LOCATION" -o none
az functionapp create -n "$APP" -g "$RESOURCE_GROUP" --storage-account "$STORAGE" \
  --consumption-plan-location "$LOCATION" --runtime python --runtime-version 3.11 --functions-version 4 \
  --os-type Linux --app-insights "ai-${APP}" -o none
principal=$(az functionapp identity assign -n "$APP" -g "$RESOURCE_GROUP" --query principalId -o tsv)

# Data-plane roles for the app's managed identity: no storage or Service Bus keys in its settings.
storage_id=$(az storage account show -n "$STORAGE" -g "$RESOURCE_GROUP" --query id -o tsv)
namespace_id=$(az servicebus namespace show -n "$NAMESPACE" -g "$RESOURCE_GROUP" --query id -o tsv)
vault_id=$(az keyvault show -n "$KEY_VAULT" --query id -o tsv)
az role assignment create --assignee "$principal" --role "Storage Table Data Contributor" --scope "$storage_id" -o none
az role assignment create --assignee "$principal" --role "Azure Service Bus Data Receiver" --scope "$namespace_id" -o none
az role assignment create --assignee "$principal" --role "Azure Service Bus Data Sender" --scope "$namespace_id" -o none
az role assignment create --assignee "$principal" --role "Key Vault Secrets User" --scope "$vault_id" -o none

vault="https://${KEY_VAULT}.vault.azure.net/secrets"
az functionapp config appsettings set -n "$APP" -g "$RESOURCE_GROUP" -o none --settings \
  "PUBLISHER_TENANT_ID=${PUBLISHER_TENANT_ID}" \
  "PUBLISHER_CLIENT_ID=${PUBLISHER_CLIENT_ID}" \
  "PUBLISHER_CREDENTIAL_KIND=secret" \
  "PUBLISHER_CLIENT_SECRET=@Microsoft.KeyVault(SecretUri=${vault}/fulfillment-client-secret)" \
  "SSO_CLIENT_ID=${SSO_CLIENT_ID}" \
  "SSO_CLIENT_SECRET=@Microsoft.KeyVault(SecretUri=${vault}/sso-client-secret)" \
  "SESSION_SECRET=@Microsoft.KeyVault(SecretUri=${vault}/session-secret)" \
  "STORAGE_ACCOUNT_URL=https://${STORAGE}.table.core.windows.net" \
  "ServiceBusConnection__fullyQualifiedNamespace=${NAMESPACE}.servicebus.windows.net" \
  "QUEUE_BACKEND=servicebus" \
  "SERVICEBUS_QUEUE=${QUEUE}" \
  "SERVICEBUS_DEADLETTER_QUEUE=${DEADLETTER_QUEUE}" \
  "PUBLIC_BASE_URL=https://${APP}.azurewebsites.net"

cd "$(dirname "$0")/.."
func azure functionapp publish "$APP" --python

cat <<DONE
Deployed. In Partner Center > Technical configuration enter:
  Landing page URL   https://${APP}.azurewebsites.net/api/landing
  Connection webhook https://${APP}.azurewebsites.net/api/webhook
  Tenant ID          ${PUBLISHER_TENANT_ID}
  Application ID     ${PUBLISHER_CLIENT_ID}
Check: curl https://${APP}.azurewebsites.net/api/health
DONE
