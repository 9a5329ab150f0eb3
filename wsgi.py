from freshcom_customers.app import create_app

app = create_app()
