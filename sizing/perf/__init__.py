"""Cost of one pass of a model on a device, without traffic: parameters, operators, roofline, memory."""
