// Every role the app's identity holds, each on the narrowest scope that works. tests/infra/test_roles.py
// holds this list to the exact set below: a new role is a decision, made here and in that test.
//
// | role                            | scope                      | why                                            |
// |---------------------------------|----------------------------|------------------------------------------------|
// | Storage Blob Data Owner         | storage account            | Functions host storage and the Flex deployment |
// |                                 |                            | package (see below for why Owner)              |
// | Storage Table Data Contributor  | storage account            | the app's tables; it creates missing ones      |
// | Azure Service Bus Data Receiver | events queue               | the worker's trigger                           |
// | Azure Service Bus Data Sender   | events queue               | webhook, landing, sweep and re-checks enqueue  |
// | Azure Service Bus Data Sender   | parking queue              | the worker parks messages no retry can fix     |
// | Key Vault Secrets User          | vault                      | Key Vault references (read secret values only) |
// | Monitoring Metrics Publisher    | Application Insights       | telemetry with Entra auth (local auth is off)  |
//
// Not granted, on purpose: Storage Queue Data Contributor (the app uses no storage queues; Microsoft's Flex
// quickstart grants it only for Durable Functions and MCP triggers), any Service Bus role on the namespace or Data Owner
// (nothing manages entities at run time; the trigger reads the events queue only), and any role that can
// read the parking queue (operators do that with their own identity).
//
// Why Storage Blob Data Owner rather than Contributor: it is the role Microsoft documents for identity-based
// host storage (AzureWebJobsStorage__*) and for the Flex deployment container; the host creates its own
// containers (azure-webjobs-hosts, azure-webjobs-secrets) and takes blob leases for timers and its host id.
// Blob data only: it gives no table, queue or management rights.
param principalId string
param storageAccountName string
param serviceBusNamespaceName string
param eventsQueueName string
param parkingQueueName string
param keyVaultName string
param applicationInsightsName string

// Built-in role definition ids (the same in every tenant).
var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource eventsQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: namespace
  name: eventsQueueName
}

resource parkingQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: namespace
  name: parkingQueueName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// principalType ServicePrincipal: ARM then skips the directory lookup, so a role for an identity created
// seconds earlier does not fail on Entra ID replication lag.
resource hostStorageBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleIds.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleIds.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventsReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsQueue.id, principalId, roleIds.serviceBusDataReceiver)
  scope: eventsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsQueue.id, principalId, roleIds.serviceBusDataSender)
  scope: eventsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource parkingSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(parkingQueue.id, principalId, roleIds.serviceBusDataSender)
  scope: parkingQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource vaultSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roleIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
