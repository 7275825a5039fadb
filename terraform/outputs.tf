output "usage_topics" {
  description = "Topic ids the switches, SMSCs and API gateways publish usage to."
  value       = { for name, topic in google_pubsub_topic.usage : name => topic.id }
}

output "function_urls" {
  description = "HTTPS endpoints of the HTTP functions."
  value       = { for name, fn in google_cloudfunctions2_function.http : name => fn.service_config[0].uri }
}

output "netsuite_queue" {
  description = "The Cloud Tasks queue in front of NetSuite."
  value       = google_cloud_tasks_queue.netsuite.id
}

output "redis_host" {
  description = "Memorystore host (private IP in the warp-billing VPC)."
  value       = google_redis_instance.balances.host
}
