// The Function App on Flex Consumption (plan FC1), the serverless plan Microsoft recommends now that Linux
// Consumption is retired (end of life 2028-09-30). It runs as the user-assigned identity for everything:
// host storage, the deployment package, Service Bus, Table Storage, Key Vault references and telemetry.
//
// Every app setting below is read by the Functions host, by the app (shared/config.py), or by azure-identity
// in the app's process; tests/infra/test_app_settings.py holds the list to that and to the rule that no
// setting carries a key, a connection string with a key, or a secret value.
param name string
param location string
param tags object
param token string

param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param serviceBusNamespaceName string

// infra/queues.json's names, which shared/config.py reads from these two settings.
param eventsQueueName string
param parkingQueueName string

param sessionSecretUri string
param ssoClientSecretUri string
param fulfillmentClientSecretUri string

param publisherTenantId string
param fulfillmentClientId string
param ssoClientId string

// 3.11 by default: the version CI, the whole test suite and the benchmarks run on (pyproject.toml targets
// it), so Azure runs what was tested; 3.12 is allowed because the app indexes and loads on it too.
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

param publicBaseUrl string = ''

@description('Upper bound on instances (Flex: 40 to 1000). Each instance holds up to 16 sessions (host.json).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  //checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions and needs always-ready instances; add zoneRedundant where the region offers it.
  properties: {
    reserved: true
  }
}

// Where buyers are sent back to (sign-in redirect, links in pages): a custom domain when one is given.
var baseUrl = empty(publicBaseUrl) ? 'https://${name}.azurewebsites.net' : publicBaseUrl
var serviceBusHost = '${serviceBusNamespaceName}.servicebus.windows.net'

// Read by the Functions host (and its Service Bus extension): identity-based connections, no keys.
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccount.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  // Also read by the app (shared/config.py): the namespace it sends to with its identity.
  {
    name: 'ServiceBusConnection__fullyQualifiedNamespace'
    value: serviceBusHost
  }
  {
    name: 'ServiceBusConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'ServiceBusConnection__clientId'
    value: identityClientId
  }
  // Names the Application Insights resource; local auth is off, so it cannot be used to write telemetry.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

// Read by the app (shared/config.py).
var appSettings = [
  {
    name: 'PUBLISHER_TENANT_ID'
    value: publisherTenantId
  }
  {
    name: 'PUBLISHER_CLIENT_ID'
    value: fulfillmentClientId
  }
  // The managed identity's token is the Partner Center app's client assertion (a federated credential on
  // that app, made by the Entra registration script): no secret exists to leak or rotate. Fallback: with
  // fulfillmentClientSecret given, kind `secret` and a Key Vault reference (shared/fulfillment/credentials.py).
  {
    name: 'PUBLISHER_CREDENTIAL_KIND'
    value: empty(fulfillmentClientSecretUri) ? 'managed_identity_federated' : 'secret'
  }
  {
    name: 'MANAGED_IDENTITY_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'STORAGE_ACCOUNT_URL'
    value: 'https://${storageAccount.name}.table.${environment().suffixes.storage}'
  }
  {
    name: 'QUEUE_BACKEND'
    value: 'servicebus'
  }
  {
    name: 'SERVICEBUS_QUEUE'
    value: eventsQueueName
  }
  {
    name: 'SERVICEBUS_DEADLETTER_QUEUE'
    value: parkingQueueName
  }
  // function_app.py binds the sweep's timer to %RECONCILE_SCHEDULE%: the host refuses to index it unset.
  {
    name: 'RECONCILE_SCHEDULE'
    value: '0 */30 * * * *'
  }
  // ... and the retention purge's to %PURGE_SCHEDULE% (daily); RETENTION_DAYS is the period it waits (R58).
  {
    name: 'PURGE_SCHEDULE'
    value: '0 30 3 * * *'
  }
  {
    name: 'RETENTION_DAYS'
    value: '30'
  }
  {
    name: 'SSO_CLIENT_ID'
    value: ssoClientId
  }
  {
    name: 'PUBLIC_BASE_URL'
    value: baseUrl
  }
  {
    name: 'SESSION_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${sessionSecretUri})'
  }
]

// Present only when the secret was given (keyvault.bicep stores it only then).
var ssoSecretSettings = empty(ssoClientSecretUri) ? [] : [
  {
    name: 'SSO_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${ssoClientSecretUri})'
  }
]
var fulfillmentSecretSettings = empty(fulfillmentClientSecretUri) ? [] : [
  {
    name: 'PUBLISHER_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${fulfillmentClientSecretUri})'
  }
]

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys service `api` (azure.yaml) to the site carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_222: Buyers' browsers and Microsoft's webhook reach the app from the internet; each caller is authenticated by the app itself (webhook JWT, Entra sign-in, function key).
  //checkov:skip=CKV_AZURE_17: Neither browsers nor Microsoft's webhook present client certificates.
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero by design; Service Bus holds events while no instance runs, and Microsoft retries webhooks.
  //checkov:skip=CKV_AZURE_213: App Service health checks are not available on Flex Consumption; /api/health serves external probes.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (there is no system-assigned one).
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // In the site itself, not a separate config resource, so the app's first start already has them.
      appSettings: concat(hostSettings, appSettings, ssoSecretSettings, fulfillmentSecretSettings)
    }
  }
}

output name string = site.name
output hostName string = site.properties.defaultHostName
