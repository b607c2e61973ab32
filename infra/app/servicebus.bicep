// The Service Bus namespace and its two queues, exactly as infra/queues.json describes them (resources.bicep
// loads that file and hands each queue over whole). Standard tier: sessions and duplicate detection, which
// the worker relies on, do not exist in Basic.
param location string
param tags object
param token string

@description('infra/queues.json `events`: the sessionful queue the worker is triggered by.')
param eventsQueue object

@description('infra/queues.json `parking`: where the worker parks messages no retry can fix (SERVICEBUS_DEADLETTER_QUEUE).')
param parkingQueue object

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: 'sb-${token}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // No SAS keys: only Entra identities with a data role send or receive.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource events 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: eventsQueue.name
  properties: eventsQueue.properties
}

resource parking 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: parkingQueue.name
  properties: parkingQueue.properties
}

output name string = namespace.name
output eventsQueueName string = events.name
output parkingQueueName string = parking.name
