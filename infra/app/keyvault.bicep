// Key Vault for the secrets no identity can replace. Access is by Azure RBAC only (no access policies):
// the app's identity gets Key Vault Secrets User here (roles.bicep) and reads them as Key Vault references.
//
// - session-secret: signs the app's own cookies; nothing outside the app could hold it instead.
// - sso-client-secret (optional): the multitenant sign-in app's secret, when that app has one.
// - fulfillment-client-secret (fallback only): left out by default, because the Partner Center app trusts
//   the managed identity through a federated credential (PUBLISHER_CREDENTIAL_KIND=managed_identity_federated).
param location string
param tags object
param token string

@secure()
param sessionSecret string

@secure()
param ssoClientSecret string = ''

@secure()
param fulfillmentClientSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${token}'
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109: Flex Consumption without a virtual network resolves Key Vault references over the public endpoint; access is by RBAC only and only the app's identity holds a data role.
  //checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109.
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // A deleted secret or vault can be recovered, never purged early: losing SESSION_SECRET by accident would
    // only sign everyone out, but a purged vault takes the references of every deployment with it.
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Secrets get no expiry date: an expired secret makes its reference unresolvable and the app refuses to
// start (shared/config.py check_fail_closed). Rotation is a new deployment with a new value.
resource sessionSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'session-secret'
  //checkov:skip=CKV_AZURE_41: No expiry on purpose: an expired secret stops the app (see the comment above); rotation is a deployment.
  properties: {
    value: sessionSecret
    contentType: 'text/plain'
  }
}

resource ssoClientSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(ssoClientSecret)) {
  parent: vault
  name: 'sso-client-secret'
  //checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not look inside a conditional resource (`if (...)`).
  //checkov:skip=CKV_AZURE_41: The sign-in app's secret expires in Entra ID, where it is rotated; a second expiry here could only stop the app early.
  properties: {
    value: ssoClientSecret
    contentType: 'text/plain'
  }
}

resource fulfillmentClientSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(fulfillmentClientSecret)) {
  parent: vault
  name: 'fulfillment-client-secret'
  //checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not look inside a conditional resource (`if (...)`).
  //checkov:skip=CKV_AZURE_41: The Partner Center app's secret expires in Entra ID, where it is rotated; a second expiry here could only stop the app early.
  properties: {
    value: fulfillmentClientSecret
    contentType: 'text/plain'
  }
}

output name string = vault.name
// Versionless URIs: a reference follows the newest version, so a rotated secret reaches the app without
// touching its settings. Empty when the secret was not given.
output sessionSecretUri string = sessionSecretEntry.properties.secretUri
output ssoClientSecretUri string = empty(ssoClientSecret) ? '' : ssoClientSecretEntry.properties.secretUri
output fulfillmentClientSecretUri string = empty(fulfillmentClientSecret) ? '' : fulfillmentClientSecretEntry.properties.secretUri
