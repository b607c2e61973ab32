// Every role the app's identity holds, each on the narrowest scope that works. tests/infra/test_roles.py
// holds this list to the exact set below: a new role is a decision, made here and in that test.
//
// | role                            | scope                      | why                                            |
// |---------------------------------|----------------------------|------------------------------------------------|
// | Storage Blob Data Owner         | storage account            | Functions host storage and the Flex deployment |
// |                                 |                            | package (see below for why Owner)              |
// | Storage Table Data Contributor  | storage account            | the app's tables; it creates missing ones      |
// | Azure Service Bus Data Owner    | events queue               | the worker's trigger and its scaler (below);   |
// |                                 |                            | webhook, landing, sweep and re-checks enqueue  |
// | Azure Service Bus Data Sender   | parking queue              | the worker parks messages no retry can fix     |
// | Azure Service Bus Data Receiver | parking queue              | the console lists, replays and discards them   |
// | Key Vault Secrets User          | vault                      | Key Vault references (read secret values only) |
// | Monitoring Metrics Publisher    | Application Insights       | telemetry with Entra auth (local auth is off)  |
//
// Not granted, on purpose: Storage Queue Data Contributor (the app uses no storage queues; Microsoft's Flex
// quickstart grants it only for Durable Functions and MCP triggers), any Service Bus role on the namespace
// (the trigger reads the events queue only), and Manage on the parking queue (nothing there scales on it).
//
// Why Data Receiver on the parking queue: the operations console (/api/console/dead-letters) runs in the
// app, so the app's identity peeks the parking queue and receives the entry an administrator replays or
// discards. Who may do that is decided by the console's app roles (Publisher.Admin); the Service Bus role
// only lets the app carry it out. The events queue's dead-letter sub-queue is covered by Owner on that queue.
//
// Why Azure Service Bus Data Owner on the events queue: Microsoft's identity table for the Service Bus
// trigger lists Data Receiver and Data Owner. Receiving needs Listen only, but the target-based scaler reads
// the queue's runtime properties (its message count), which needs Manage; without it the scaler logs
// "Target scaler is not supported" and falls back to slower incremental scaling. Owner on that one queue
// includes Listen and Send, so no Receiver or Sender is granted there; it cannot touch other entities.
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
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
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

resource eventsOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsQueue.id, principalId, roleIds.serviceBusDataOwner)
  scope: eventsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataOwner)
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

resource parkingReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(parkingQueue.id, principalId, roleIds.serviceBusDataReceiver)
  scope: parkingQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataReceiver)
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
