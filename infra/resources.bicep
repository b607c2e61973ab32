// Everything the function app needs, in one resource group. `azd up` reaches it through main.bicep; the
// `az` path deploys it directly (`az deployment group create --template-file infra/resources.bicep`).
//
// Keyless by construction: the app's user-assigned identity reaches Storage, Service Bus, Key Vault and
// Application Insights through role assignments made here, before the app first starts. The only secrets
// are the ones no identity can replace (the session-signing key, the sign-in app's client secret if it has
// one); they live in Key Vault and reach the app as Key Vault references.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the environment: seeds every resource name and tags every resource.')
param environmentName string

@description('Azure region of every resource (Flex Consumption must be offered there).')
param location string = resourceGroup().location

@description('Entra tenant of the publisher\'s single-tenant app registered in Partner Center.')
param publisherTenantId string

@description('Application (client) id of the single-tenant app registered in Partner Center.')
param fulfillmentClientId string

@description('Application (client) id of the multitenant app buyers sign in with.')
param ssoClientId string

@description('Address that receives the alerts.')
param alertEmail string

@secure()
@minLength(32)
@description('Signs session cookies, CSRF tokens and status tickets (SESSION_SECRET).')
param sessionSecret string

@secure()
@description('Client secret of the sign-in app; empty: none.')
param ssoClientSecret string = ''

@secure()
@description('Fallback only: a client secret of the Partner Center app; empty (default): federated managed identity.')
param fulfillmentClientSecret string = ''

@allowed([
  '3.11'
  '3.12'
])
@description('Python of the Functions worker.')
param pythonVersion string = '3.11'

@description('Address buyers reach the app at; empty: https://<function app>.azurewebsites.net.')
param publicBaseUrl string = ''

@allowed([
  'Standard_ZRS'
  'Standard_LRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
@description('Redundancy of the storage account; zone-redundant by default. Standard_LRS or Standard_GRS in a region without availability zones.')
param storageSku string = 'Standard_ZRS'

// The queue names and properties the code, host.json and the dev host's stand-in assume; one file, checked
// by tests/infra/test_queues.py.
var queues = loadJsonContent('queues.json')
var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${token}'

// The app's one identity. User-assigned rather than system-assigned: it exists before the Function App, so
// every role it needs (Key Vault's included) is granted before the app first starts and resolves its Key
// Vault references, and it survives the app being deleted and created again.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${token}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    token: token
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    token: token
    skuName: storageSku
  }
}

module serviceBus 'app/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: tags
    token: token
    eventsQueue: queues.events
    parkingQueue: queues.parking
  }
}

module vault 'app/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    token: token
    sessionSecret: sessionSecret
    ssoClientSecret: ssoClientSecret
    fulfillmentClientSecret: fulfillmentClientSecret
  }
}

module roles 'app/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.properties.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    eventsQueueName: queues.events.name
    parkingQueueName: queues.parking.name
    keyVaultName: vault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  params: {
    name: functionAppName
    location: location
    tags: tags
    token: token
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    serviceBusNamespaceName: serviceBus.outputs.name
    eventsQueueName: queues.events.name
    parkingQueueName: queues.parking.name
    sessionSecretUri: vault.outputs.sessionSecretUri
    ssoClientSecretUri: vault.outputs.ssoClientSecretUri
    fulfillmentClientSecretUri: vault.outputs.fulfillmentClientSecretUri
    publisherTenantId: publisherTenantId
    fulfillmentClientId: fulfillmentClientId
    ssoClientId: ssoClientId
    pythonVersion: pythonVersion
    publicBaseUrl: publicBaseUrl
  }
  // The app starts with its roles in place: host storage and the deployment package (blob), its tables,
  // both queues, Key Vault (its references resolve at start) and Application Insights (Entra ingestion).
  dependsOn: [
    roles
  ]
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  params: {
    tags: tags
    token: token
    alertEmail: alertEmail
    serviceBusNamespaceName: serviceBus.outputs.name
    eventsQueueName: queues.events.name
    parkingQueueName: queues.parking.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
  }
}

// The names infra/README.md lists (main.bicep passes them on to azd).
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.hostName
output FUNCTION_APP_URL string = 'https://${functionApp.outputs.hostName}'
output KEY_VAULT_NAME string = vault.outputs.name
output MANAGED_IDENTITY_CLIENT_ID string = identity.properties.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.properties.principalId
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.name
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
