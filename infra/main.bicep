// Entry point for `azd up` (subscription scope): the resource group, then everything in it
// (resources.bicep). The `az` path deploys resources.bicep into a resource group it made itself
// (infra/README.md); both produce the same outputs, which azd writes into the environment.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. Flex Consumption is not offered everywhere: `az functionapp list-flexconsumption-locations` lists where it is.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Entra tenant of the publisher\'s single-tenant app registered in Partner Center (and of this subscription: the managed identity federates into that tenant).')
param publisherTenantId string

@description('Application (client) id of the single-tenant app registered in Partner Center: the only caller of the Fulfillment API.')
param fulfillmentClientId string

@description('Application (client) id of the multitenant app buyers sign in with.')
param ssoClientId string

@description('Address that receives the alerts (dead letters, failed activations, webhook 5xx).')
param alertEmail string

// No value in main.parameters.json on purpose: azd generates it once per environment (64 letters and
// digits) and keeps it in .azure/<env>/config.json, so re-provisioning keeps buyers signed in. Rotate it by
// removing it there (or `azd env set-secret`) and provisioning again: every session ends.
@secure()
@minLength(32)
@description('Signs session cookies, CSRF tokens and status tickets (SESSION_SECRET).')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 64
      noSpecial: true
    }
  }
})
param sessionSecret string

@secure()
@description('Client secret of the sign-in app. Empty: none is stored and SSO_CLIENT_SECRET is left out.')
param ssoClientSecret string = ''

@secure()
@description('Fallback only: a client secret of the Partner Center app. Empty (the default): the managed identity proves the app through a federated credential and no secret exists.')
param fulfillmentClientSecret string = ''

@allowed([
  '3.11'
  '3.12'
])
@description('Python of the Functions worker; 3.11 is the version the whole test suite and the benchmarks run on.')
param pythonVersion string = '3.11'

@description('Address buyers reach the app at (PUBLIC_BASE_URL), e.g. a custom domain. Empty: https://<function app>.azurewebsites.net.')
param publicBaseUrl string = ''

@allowed([
  'Standard_ZRS'
  'Standard_LRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
@description('Redundancy of the storage account (host storage, the deployment package, the app\'s tables). Zone-redundant by default: the tables are the publisher\'s record of every subscription. In a region without availability zones, ZRS and GZRS fail: use Standard_LRS or Standard_GRS (STORAGE_SKU in azd).')
param storageSku string = 'Standard_ZRS'

var tags = {
  'azd-env-name': environmentName
}

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'resources-${environmentName}'
  scope: group
  params: {
    environmentName: environmentName
    location: location
    publisherTenantId: publisherTenantId
    fulfillmentClientId: fulfillmentClientId
    ssoClientId: ssoClientId
    alertEmail: alertEmail
    sessionSecret: sessionSecret
    ssoClientSecret: ssoClientSecret
    fulfillmentClientSecret: fulfillmentClientSecret
    pythonVersion: pythonVersion
    publicBaseUrl: publicBaseUrl
    storageSku: storageSku
  }
}

// The names infra/README.md lists; azd writes each into .azure/<env>/.env, the deploy and Entra scripts
// read them. Keep them in step with resources.bicep's outputs (tests/infra checks both lists).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.AZURE_FUNCTION_APP_NAME
output FUNCTION_APP_HOSTNAME string = resources.outputs.FUNCTION_APP_HOSTNAME
output FUNCTION_APP_URL string = resources.outputs.FUNCTION_APP_URL
output KEY_VAULT_NAME string = resources.outputs.KEY_VAULT_NAME
output MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.MANAGED_IDENTITY_CLIENT_ID
output MANAGED_IDENTITY_PRINCIPAL_ID string = resources.outputs.MANAGED_IDENTITY_PRINCIPAL_ID
output SERVICEBUS_NAMESPACE string = resources.outputs.SERVICEBUS_NAMESPACE
output STORAGE_ACCOUNT_NAME string = resources.outputs.STORAGE_ACCOUNT_NAME
output APPLICATIONINSIGHTS_NAME string = resources.outputs.APPLICATIONINSIGHTS_NAME
