"""Inbound webhooks (Authorize.Net payments, NetSuite events): signatures, replay protection."""
