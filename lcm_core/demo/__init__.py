"""The pack's demo family: a procedural captioned shapes dataset, a pixel checker and features."""
