"""WARP Billing: rating, charging and billing for wholesale telecom traffic."""

__version__ = "0.1.0"
