"""The runtime: building models through backends, canonical weights, training, checking and run folders."""
