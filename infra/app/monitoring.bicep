// Log Analytics and a workspace-based Application Insights. Local (instrumentation key) authentication is
// off: the Functions host sends its telemetry with the app's managed identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which roles.bicep makes a Monitoring Metrics Publisher here.
// The connection string the app still gets names the resource; without local auth it cannot be used to
// write telemetry, let alone read any.
param location string
param tags object
param token string

@description('Days Log Analytics keeps traces, requests and exceptions: enough to answer "what happened to subscription X last month".')
param retentionInDays int = 90

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    // Data goes to the workspace only; the classic store is gone for workspace-based resources.
    IngestionMode: 'LogAnalytics'
  }
}

output applicationInsightsName string = applicationInsights.name
output workspaceName string = workspace.name
