"""Configuration: parsing, validation and `argusd check-config`."""
