"""ray.autoscaler of the `ray` stand-in: the public SDK only (sdk.request_resources)."""
