from .cli import console_main

if __name__ == "__main__":  # figure workers re-import this module (multiprocessing)
    console_main()
