// One storage account for the Functions host (blobs: keys, timer leases, the deployment package) and the
// app's tables (subscriptions, operations, seats, users and the tables beside them, which the app creates
// on first use). Shared keys are off, so nothing can reach it without an Entra identity and a data role.
param location string
param tags object
param token string

@description('Redundancy of the account (resources.bicep `storageSku`). Standard general-purpose v2 only: the Functions host needs Blob, Queue and Table, which Premium accounts lack.')
@allowed([
  'Standard_ZRS'
  'Standard_LRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

// Flex Consumption fetches the app's package from here with the app's identity (function.bicep).
var deploymentContainerName = 'app-package'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_43: The name is 'st' and uniqueString's 13 lowercase letters and digits, always a valid account name; checkov cannot evaluate the expression.
  name: 'st${token}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    //checkov:skip=CKV_AZURE_206: Replicated (Standard_ZRS) unless the parameter says otherwise; checkov does not read parameter defaults.
    name: skuName
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Flex Consumption without virtual-network integration reaches storage over its public endpoint.
    //checkov:skip=CKV_AZURE_59: Reached by the Flex host over the public endpoint (no virtual network); every request needs an Entra token and a data role, shared keys are off.
    publicNetworkAccess: 'Enabled'
    //checkov:skip=CKV_AZURE_35: A deny rule would lock the Flex host out (no virtual network) and add nothing to identity-only access.
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        table: {
          enabled: true
        }
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // A deleted or overwritten package or host blob can be brought back for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output deploymentContainerName string = deploymentContainer.name
