"""What readers and controllers use: runs read back, the model library, control requests. Never the writer."""
