// Alerts that need a person, all mailed to alertEmail through one action group.
//
// 1. dead letters (metric): a message Service Bus dead-lettered on either queue (DeadletteredMessages by
//    EntityName): the events queue after maxDeliveryCount failed deliveries, the parking queue on expiry.
// 2. parked messages (metric): the parking queue holds a message (ActiveMessages > 0): the worker parked
//    something no retry can fix (malformed body, forged or refused operation) with its reason.
// 3. failed activations (log): the worker's `activation_failed` event (EVENT_ACTIVATION_FAILED in
//    shared/telemetry), one line per failed activation attempt, retried or parked. A provisioning hook
//    that says "not yet" (reason RetryLaterError) is a wait, not a failure, and is left out.
// 4. webhook 5xx (log): Microsoft's webhook got a 5xx: requests of function `marketplace_webhook` (the
//    host's row; the app's own is `POST /api/webhook`) with resultCode >= 500, or the webhook's
//    `webhook_5xx` event (EVENT_WEBHOOK_5XX). Microsoft retries; a run of them means lost time.
//
// An event is matched twice: `customDimensions.event` / `.reason` of the app's OpenTelemetry rows, and
// `event=<name>` / `reason=<reason>` in the Functions host's copy of the line (shared/logs.py ContextFilter
// appends them to the text). infra/README.md "Alerts" states the contract; tests/infra/test_alerts.py
// drives the worker and the webhook and runs these queries on the lines as both sinks ship them.
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
    description: 'Service Bus dead-lettered a message on ${eventsQueueName} (every delivery failed, up to maxDeliveryCount) or ${parkingQueueName} (a receiver, such as an operator reading parked messages, abandoned it maxDeliveryCount times; it has no time to live, so nothing expires there). Look at the dead-letter sub-queue: its DeadLetterReason says why.'
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
| where tostring(customDimensions.event) == "activation_failed" or message has "event=activation_failed"
| where tostring(customDimensions.reason) != "RetryLaterError" and message !has "reason=RetryLaterError"
'''

resource failedActivation 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-failed-activation-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Activation failed'
    description: 'An activation attempt failed (event activation_failed) and was retried or parked: a buyer paid and the subscription may not be activated. Its traces row carries the reason, outcome and subscription id.'
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
    | where name == "marketplace_webhook" or operation_Name == "marketplace_webhook"
        or name == "POST /api/webhook" or url endswith "/api/webhook"
    | where toint(resultCode) >= 500),
    (traces
    | where tostring(customDimensions.event) == "webhook_5xx" or message has "event=webhook_5xx")
'''

resource webhookFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-webhook-5xx-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Webhook answered 5xx'
    description: 'Microsoft\'s webhook got a 5xx (event webhook_5xx: queue not reachable, signing keys unavailable, or an error). Microsoft retries, but the operation waits.'
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
