"""Customer identity and account service for online stores."""
