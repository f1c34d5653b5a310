print("vireo-target")
