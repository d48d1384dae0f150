// streamgate Web SDK (to be written)
