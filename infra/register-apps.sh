#!/usr/bin/env bash
# Creates, or checks, the two Entra ID app registrations the function app needs, in the tenant `az` is signed
# in to (R17, R43-R45). Idempotent: the apps are found by display name, and only what is missing is added.
#
#   AZURE_ENV_NAME=contoso-saas infra/register-apps.sh
#
# 1. The Fulfillment app, "<AZURE_ENV_NAME>-fulfillment": single tenant (AzureADMyOrg); its tenant id and
#    application id go into Partner Center. Its service principal in the same tenant (R45: the Fulfillment
#    API refuses tokens of an app without one). When MANAGED_IDENTITY_PRINCIPAL_ID is set (infra/deploy.sh
#    sets it from the deployment), a federated identity credential that trusts that user-assigned managed
#    identity: PUBLISHER_CREDENTIAL_KIND=managed_identity_federated (shared/fulfillment/credentials.py) asks
#    the identity for a token for api://AzureADTokenExchange and hands it to Entra as the app's client
#    assertion, so the app has no secret at all (R47).
# 2. The sign-in app, "<AZURE_ENV_NAME>-signin": work, school and personal Microsoft accounts
#    (AzureADandPersonalMicrosoftAccount), Graph openid/profile/email/User.Read (R9). When FUNCTION_APP_HOSTNAME
#    is set, the web redirect URI https://<host>/api/auth/callback (CALLBACK_PATH in shared/identity/signin.py).
#    It needs a client secret: buyers sign in through msal's confidential-client authorization code flow
#    with PKCE, which proves the app with SSO_CLIENT_SECRET (shared/identity/signin.py). A new secret is
#    written to $STATE_DIR/sso-client-secret (mode 0600, never printed); infra/deploy.sh hands it to the
#    template, which keeps it in Key Vault. The app roles Publisher.Admin and Publisher.Reader of the
#    operations console (/api/console), which staff of this tenant are assigned to.
#
# Prints what to enter in Partner Center, and writes the ids the deployment needs to $STATE_DIR/apps.env.
#
# Settings (environment):
#   AZURE_ENV_NAME                 required; names both apps (letters, digits, hyphens)
#   FULFILLMENT_APP_NAME           display name of the Fulfillment app (default <AZURE_ENV_NAME>-fulfillment)
#   SSO_APP_NAME                   display name of the sign-in app (default <AZURE_ENV_NAME>-signin)
#   PUBLISHER_TENANT_ID            optional; when set, must be the tenant `az` is signed in to
#   MANAGED_IDENTITY_PRINCIPAL_ID  object (principal) id of the user-assigned identity to federate
#   FUNCTION_APP_HOSTNAME          the Function App's host name, for the redirect URI and Partner Center URLs
#   ROTATE_SSO_SECRET=1            add a new sign-in secret even though one exists (the old one stays valid
#                                  until it expires or you delete it: `az ad app credential delete`)
#   STATE_DIR                      default .local/azure/<AZURE_ENV_NAME> (git-ignored, never published)
#   AZ_RETRY_DELAYS                seconds to wait between attempts while Entra ID has not yet propagated an
#                                  app created a moment ago (default "5 10 20 40", then it gives up)
set -euo pipefail
shopt -s inherit_errexit

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${AZURE_ENV_NAME:?set AZURE_ENV_NAME, the name of this deployment (e.g. contoso-saas)}"
if [[ ! "$AZURE_ENV_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]]; then
  echo "AZURE_ENV_NAME may hold letters, digits and hyphens only, got '$AZURE_ENV_NAME'" >&2
  exit 2
fi
FULFILLMENT_APP_NAME=${FULFILLMENT_APP_NAME:-${AZURE_ENV_NAME}-fulfillment}
SSO_APP_NAME=${SSO_APP_NAME:-${AZURE_ENV_NAME}-signin}
MANAGED_IDENTITY_PRINCIPAL_ID=${MANAGED_IDENTITY_PRINCIPAL_ID:-}
FUNCTION_APP_HOSTNAME=${FUNCTION_APP_HOSTNAME:-}
STATE_DIR=${STATE_DIR:-$root/.local/azure/$AZURE_ENV_NAME}
AZ_RETRY_DELAYS=${AZ_RETRY_DELAYS:-5 10 20 40}
guid='^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'
if [ -n "$MANAGED_IDENTITY_PRINCIPAL_ID" ] && [[ ! "$MANAGED_IDENTITY_PRINCIPAL_ID" =~ $guid ]]; then
  echo "MANAGED_IDENTITY_PRINCIPAL_ID must be the identity's object id (a GUID)," \
    "got '$MANAGED_IDENTITY_PRINCIPAL_ID'" >&2
  exit 2
fi
if [ -n "$FUNCTION_APP_HOSTNAME" ] && [[ ! "$FUNCTION_APP_HOSTNAME" =~ ^[A-Za-z0-9.-]+$ ]]; then
  echo "FUNCTION_APP_HOSTNAME must be a host name (no scheme, no path), got '$FUNCTION_APP_HOSTNAME'" >&2
  exit 2
fi

CALLBACK_PATH=/api/auth/callback
FEDERATED_CREDENTIAL_NAME=function-app-managed-identity
FEDERATION_AUDIENCE=api://AzureADTokenExchange
SSO_SECRET_NAME=function-app-signin
GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
# Delegated Graph permissions of the sign-in: openid, profile, email, User.Read.
GRAPH_SCOPES=(37f7f235-527c-4136-accd-4a02d197296e 14dad69e-099b-42c9-810b-d002981feec1
  64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0 e1fe6dd8-ba31-4d61-89e7-88639da4683d)
# How Graph says that an object created seconds ago has not reached every replica yet.
NOT_PROPAGATED='does not exist|not found|NotFound'

umask 077
mkdir -p "$STATE_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs "$@"; while it fails because Graph has not propagated a new object yet, runs it again after each delay
# of AZ_RETRY_DELAYS. Any other failure, or the last one, ends the script with az's own message.
graph_retry() {
  local delay
  for delay in $AZ_RETRY_DELAYS ""; do
    if "$@" 2>"$work/stderr"; then
      return 0
    fi
    if [ -z "$delay" ] || ! grep -qiE "$NOT_PROPAGATED" "$work/stderr"; then
      cat "$work/stderr" >&2
      return 1
    fi
    echo "  Entra ID has not propagated it yet; trying again in ${delay}s" >&2
    sleep "$delay"
  done
}

# A value inside an OData string literal: quotes doubled.
odata() { printf '%s' "${1//\'/\'\'}"; }

# The appId of the app with this exact display name, empty when there is none; fails when there are several.
find_app() {
  local ids
  ids=$(az ad app list --filter "displayName eq '$(odata "$1")'" --query "[].appId" -o tsv)
  if [ "$(printf '%s' "$ids" | grep -c .)" -gt 1 ]; then
    echo "Several app registrations are named '$1' ($(echo "$ids" | paste -sd ' ' -)): delete the extras," \
      "or choose another name with FULFILLMENT_APP_NAME / SSO_APP_NAME" >&2
    return 1
  fi
  printf '%s' "$ids"
}

require_audience() {
  local app_id=$1 name=$2 expected=$3 actual
  actual=$(graph_retry az ad app show --id "$app_id" --query signInAudience -o tsv)
  if [ "$actual" != "$expected" ]; then
    echo "The app '$name' ($app_id) exists with sign-in audience $actual, not $expected." >&2
    echo "Fix it in the Entra admin center, or choose another display name." >&2
    return 1
  fi
}

tenant=$(az account show --query tenantId -o tsv)
if [ -n "${PUBLISHER_TENANT_ID:-}" ] && [ "$PUBLISHER_TENANT_ID" != "$tenant" ]; then
  echo "az is signed in to tenant $tenant, but PUBLISHER_TENANT_ID is $PUBLISHER_TENANT_ID:" \
    "run az login --tenant $PUBLISHER_TENANT_ID (the apps, and the managed identity they trust, live there)" >&2
  exit 1
fi
echo "Entra ID tenant $tenant"

# --- 1. The Fulfillment app, its service principal and its federated credential.
fulfillment_id=$(find_app "$FULFILLMENT_APP_NAME")
if [ -z "$fulfillment_id" ]; then
  fulfillment_id=$(az ad app create --display-name "$FULFILLMENT_APP_NAME" --sign-in-audience AzureADMyOrg \
    --query appId -o tsv)
  echo "Fulfillment app '$FULFILLMENT_APP_NAME' created: $fulfillment_id"
else
  require_audience "$fulfillment_id" "$FULFILLMENT_APP_NAME" AzureADMyOrg
  echo "Fulfillment app '$FULFILLMENT_APP_NAME' found: $fulfillment_id"
fi

principal_id=$(az ad sp list --filter "appId eq '$fulfillment_id'" --query "[].id" -o tsv)
if [ -z "$principal_id" ]; then
  principal_id=$(graph_retry az ad sp create --id "$fulfillment_id" --query id -o tsv)
  echo "  service principal created: $principal_id"
else
  echo "  service principal found: $principal_id"
fi

issuer="https://login.microsoftonline.com/$tenant/v2.0"
if [ -n "$MANAGED_IDENTITY_PRINCIPAL_ID" ]; then
  trusted=""
  named=""
  credentials=$(graph_retry az ad app federated-credential list --id "$fulfillment_id" \
    --query "[].[name, subject, issuer]" -o tsv)
  while IFS=$'\t' read -r name subject credential_issuer; do
    if [ "$subject" = "$MANAGED_IDENTITY_PRINCIPAL_ID" ] && [ "$credential_issuer" = "$issuer" ]; then
      trusted=$name
    fi
    if [ "$name" = "$FEDERATED_CREDENTIAL_NAME" ]; then
      named=$name
    fi
  done <<<"$credentials"
  cat >"$work/federated-credential.json" <<JSON
{
  "name": "$FEDERATED_CREDENTIAL_NAME",
  "issuer": "$issuer",
  "subject": "$MANAGED_IDENTITY_PRINCIPAL_ID",
  "audiences": ["$FEDERATION_AUDIENCE"],
  "description": "The Function App's user-assigned managed identity (PUBLISHER_CREDENTIAL_KIND=managed_identity_federated)"
}
JSON
  if [ -n "$trusted" ]; then
    echo "  federated credential found: trusts managed identity $MANAGED_IDENTITY_PRINCIPAL_ID"
  elif [ -n "$named" ]; then
    # The identity was re-created (a new principal id): point the credential at the new one.
    graph_retry az ad app federated-credential update --id "$fulfillment_id" \
      --federated-credential-id "$FEDERATED_CREDENTIAL_NAME" --parameters "$work/federated-credential.json" -o none
    echo "  federated credential updated: now trusts managed identity $MANAGED_IDENTITY_PRINCIPAL_ID"
  else
    graph_retry az ad app federated-credential create --id "$fulfillment_id" \
      --parameters "$work/federated-credential.json" -o none
    echo "  federated credential created: trusts managed identity $MANAGED_IDENTITY_PRINCIPAL_ID"
  fi
else
  echo "  federated credential: not yet (needs MANAGED_IDENTITY_PRINCIPAL_ID; infra/deploy.sh adds it)"
fi

# --- 2. The sign-in app, its redirect URI and its client secret.
redirect_uri=""
if [ -n "$FUNCTION_APP_HOSTNAME" ]; then
  redirect_uri="https://$FUNCTION_APP_HOSTNAME$CALLBACK_PATH"
fi
sso_id=$(find_app "$SSO_APP_NAME")
if [ -z "$sso_id" ]; then
  {
    printf '[{"resourceAppId": "%s", "resourceAccess": [' "$GRAPH_APP_ID"
    separator=""
    for scope in "${GRAPH_SCOPES[@]}"; do
      printf '%s{"id": "%s", "type": "Scope"}' "$separator" "$scope"
      separator=", "
    done
    printf ']}]\n'
  } >"$work/graph-scopes.json"
  redirect=()
  if [ -n "$redirect_uri" ]; then
    redirect=(--web-redirect-uris "$redirect_uri")
  fi
  # Accounts of any organisation and personal accounts; such apps must ask for v2 access tokens.
  sso_id=$(az ad app create --display-name "$SSO_APP_NAME" --sign-in-audience AzureADandPersonalMicrosoftAccount \
    --requested-access-token-version 2 --required-resource-accesses "$work/graph-scopes.json" "${redirect[@]}" \
    --query appId -o tsv)
  echo "Sign-in app '$SSO_APP_NAME' created: $sso_id"
else
  require_audience "$sso_id" "$SSO_APP_NAME" AzureADandPersonalMicrosoftAccount
  echo "Sign-in app '$SSO_APP_NAME' found: $sso_id"
  if [ -n "$redirect_uri" ]; then
    redirects=()
    uris=$(graph_retry az ad app show --id "$sso_id" --query "web.redirectUris" -o tsv)
    if [ -n "$uris" ]; then
      mapfile -t redirects <<<"$uris"
    fi
    if [ -n "$uris" ] && grep -qxF "$redirect_uri" <<<"$uris"; then
      echo "  redirect URI found: $redirect_uri"
    else
      # --web-redirect-uris replaces the list: keep the ones already there.
      graph_retry az ad app update --id "$sso_id" --web-redirect-uris "${redirects[@]}" "$redirect_uri" -o none
      echo "  redirect URI added: $redirect_uri"
    fi
  fi
fi
if [ -z "$redirect_uri" ]; then
  echo "  redirect URI: not yet (needs FUNCTION_APP_HOSTNAME; infra/deploy.sh adds it)"
fi

# The operations console's app roles (shared/domain/operators.py) on the sign-in app. Fixed ids: Graph refuses
# a list that drops an enabled role, so every run must name the same ones. The app counts them only for
# users of this tenant (a customer's tenant can assign the same names in its own copy of the app).
cat >"$work/console-roles.json" <<'JSON'
[
  {"allowedMemberTypes": ["User"], "isEnabled": true, "value": "Publisher.Admin",
   "id": "5f0c2a0e-6d1b-4c52-9a43-1e7b2d9c0a11", "displayName": "Console administrator",
   "description": "Sees the operations console and acts: reconcile, retry, decide, cancel, replay."},
  {"allowedMemberTypes": ["User"], "isEnabled": true, "value": "Publisher.Reader",
   "id": "8b3e6f1d-2a4c-4e7b-b5d9-3c0f1a2e4b22", "displayName": "Console reader",
   "description": "Sees the operations console; cannot act."}
]
JSON
roles=$(graph_retry az ad app show --id "$sso_id" --query "appRoles[].value" -o tsv)
if grep -qxF Publisher.Admin <<<"$roles" && grep -qxF Publisher.Reader <<<"$roles"; then
  echo "  console roles found: Publisher.Admin, Publisher.Reader"
elif [ -z "$roles" ]; then
  graph_retry az ad app update --id "$sso_id" --app-roles "$work/console-roles.json" -o none
  echo "  console roles added: Publisher.Admin, Publisher.Reader"
else
  # Someone defined other roles: replacing the list could disable theirs, so a person merges by hand.
  echo "  the sign-in app has other app roles; add Publisher.Admin and Publisher.Reader to them by hand" \
    "(Entra admin center > App registrations > $SSO_APP_NAME > App roles)" >&2
fi
echo "  give staff a console role: Entra admin center > Enterprise applications > $SSO_APP_NAME >" \
  "Users and groups > Add user/group"

secret_file="$STATE_DIR/sso-client-secret"
secrets() {
  graph_retry az ad app credential list --id "$sso_id" \
    --query "[?displayName=='$SSO_SECRET_NAME'].[endDateTime, keyId]" -o tsv | sort
}
listed=$(secrets)
if [ -z "$listed" ] || [ "${ROTATE_SSO_SECRET:-}" = "1" ]; then
  # The password goes from az's output straight to a file only this user can read; it is never printed.
  graph_retry az ad app credential reset --id "$sso_id" --append --display-name "$SSO_SECRET_NAME" --years 1 \
    --query password -o tsv >"$work/sso-client-secret"
  mv "$work/sso-client-secret" "$secret_file"
  echo "  client secret created, kept in $secret_file for the deployment"
  if [ -n "$listed" ]; then
    echo "  older secrets stay valid until they expire; once deployed, delete them with"
    cut -f 2 <<<"$listed" | sed "s/^/    az ad app credential delete --id $sso_id --key-id /"
  fi
elif [ -f "$secret_file" ]; then
  echo "  client secret found (expires $(tail -n 1 <<<"$listed" | cut -f 1)); its value is in $secret_file"
else
  echo "  client secret found (expires $(tail -n 1 <<<"$listed" | cut -f 1)), but its value is not on this" \
    "machine: run again with ROTATE_SSO_SECRET=1 to add a new one for the deployment"
fi

cat >"$STATE_DIR/apps.env" <<ENV
PUBLISHER_TENANT_ID=$tenant
FULFILLMENT_CLIENT_ID=$fulfillment_id
SSO_CLIENT_ID=$sso_id
ENV

echo
echo "For the deployment (infra/deploy.sh reads them from $STATE_DIR/apps.env):"
sed 's/^/  /' "$STATE_DIR/apps.env"
echo
echo "Partner Center > Marketplace offers > your SaaS offer > Technical configuration:"
if [ -n "$FUNCTION_APP_HOSTNAME" ]; then
  echo "  Landing page URL                 https://$FUNCTION_APP_HOSTNAME/api/landing"
  echo "  Connection webhook               https://$FUNCTION_APP_HOSTNAME/api/webhook"
else
  echo "  Landing page URL                 https://<function app host>/api/landing   (known after infra/deploy.sh)"
  echo "  Connection webhook               https://<function app host>/api/webhook   (known after infra/deploy.sh)"
fi
echo "  Microsoft Entra tenant ID        $tenant"
echo "  Microsoft Entra application ID   $fulfillment_id"
