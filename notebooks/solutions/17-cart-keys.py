def cart_keys(cart_id):
    tag = f"{{cart:{cart_id}}}"  # the hash tag: only "cart:<id>" decides the slot
    return f"{tag}.items", f"{tag}.total"
