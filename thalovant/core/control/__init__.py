"""Control-plane API: requests, answers and the identities it provisions."""
