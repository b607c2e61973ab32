// Alerts that need a person, all mailed to alertEmail through one action group.
//
// 1. dead letters (metric): a message Service Bus dead-lettered on either queue (DeadletteredMessages by
//    EntityName): the events queue after maxDeliveryCount failed deliveries, the parking queue on expiry.
// 2. parked messages (metric): the parking queue holds a message (ActiveMessages > 0): the worker parked
//    something no retry can fix (malformed body, forged or refused operation) with its reason.
// 3. failed activations (log): an activation message failed or was parked. Matched on the lines
//    shared/entrypoints/worker.py writes ("message failed; it will be delivered again", "message
//    dead-lettered") for a message whose id is `activate-<subscription id>`
//    (shared/queueing/messages.py activation_message), found in the ids the app appends to every line
//    (`message_id=activate-...`, shared/logs.py ContextFilter) or in the customDimensions `message_id` /
//    `kind` == "activate" an OpenTelemetry log exporter would carry. A provisioning hook that says "not yet"
//    (RetryLaterError) is a wait, not a failure, and is left out.
// 4. webhook 5xx (log): Microsoft's webhook got a 5xx: requests telemetry of function
//    `marketplace_webhook` (or a request to /api/webhook) with resultCode >= 500, or the app's own lines
//    for its two 503s ("webhook not enqueued, Microsoft will retry", "webhook signing keys unavailable").
//    Microsoft retries, so one is a warning; a run of them means lost time on Microsoft's side.
//
// infra/README.md lists these log lines as a contract: renaming one in the app means changing it here.
param location string
param tags object
param token string
param alertEmail string
param serviceBusNamespaceName string
param eventsQueueName string
param parkingQueueName string
param applicationInsightsName string

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${token}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'saas-alerts'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-dead-lettered-${token}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Service Bus dead-lettered a message on ${eventsQueueName} (every delivery failed, up to maxDeliveryCount) or ${parkingQueueName} (expired). Look at the dead-letter sub-queue: its DeadLetterReason says why.'
    severity: 1
    enabled: true
    scopes: [
      namespace.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                eventsQueueName
                parkingQueueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Average'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

resource parked 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-parked-${token}'
  location: 'global'
  tags: tags
  properties: {
    description: 'The worker parked a message on ${parkingQueueName}: no retry can fix it. Its deadLetterReason and deadLetterDescription application properties say why.'
    severity: 2
    enabled: true
    scopes: [
      namespace.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'ParkedMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'ActiveMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                parkingQueueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Average'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

var failedActivationQuery = '''
traces
| where message has "message failed; it will be delivered again" or message has "message dead-lettered"
| where message !has "RetryLaterError"
| where message matches regex @"message_id\W{1,4}activate-"
    or tostring(customDimensions.message_id) startswith "activate-"
    or tostring(customDimensions.kind) == "activate"
'''

resource failedActivation 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-failed-activation-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Activation failed'
    description: 'An activation message failed or was parked: a buyer paid and the subscription may not be activated. Search traces for the subscription id in the message.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: failedActivationQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

var webhookFailureQuery = '''
union
    (requests
    | where name == "marketplace_webhook" or operation_Name == "marketplace_webhook" or url endswith "/api/webhook"
    | where toint(resultCode) >= 500),
    (traces
    | where message has "webhook not enqueued, Microsoft will retry" or message has "webhook signing keys unavailable")
'''

resource webhookFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-webhook-5xx-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Webhook answered 5xx'
    description: 'Microsoft\'s webhook got a 5xx (queue not reachable, signing keys unavailable, or an error). Microsoft retries, but the operation waits.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: webhookFailureQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}
