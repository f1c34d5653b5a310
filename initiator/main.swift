print("vireo-initiator")
