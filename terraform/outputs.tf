output "usage_topics" {
  description = "Topic ids the switches, SMSCs and API gateways publish usage to."
  value       = { for name, topic in google_pubsub_topic.usage : name => topic.id }
}

output "dead_letter_subscriptions" {
  description = "Pull subscriptions holding each usage topic's dead letters (inspect, then `warp rejects replay`)."
  value       = { for name, sub in google_pubsub_subscription.usage_dead_letter : name => sub.id }
}

output "function_urls" {
  description = "run.app URL of every deployed function (internal ingress: reachable from Pub/Sub, Scheduler, Cloud Tasks)."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "function_service_accounts" {
  description = "Runtime service account of every deployed function."
  value       = { for name, account in google_service_account.fn : name => account.email }
}

output "queues" {
  description = "Cloud Tasks queues and the function each one delivers to."
  value       = { for name, queue in google_cloud_tasks_queue.queues : name => queue.id }
}

output "redis_host" {
  description = "Memorystore host (private IP in the warp-billing VPC); TLS on the port below."
  value       = "${google_redis_instance.balances.host}:${google_redis_instance.balances.port}"
}
