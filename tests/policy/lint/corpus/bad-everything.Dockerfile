FROM ubuntu
ADD . /app
RUN apt-get update
RUN apt-get install -y python3
RUN cd /app && pip install -r requirements.txt > /app/install.log
ENV SECRET_KEY=s3cr3t
EXPOSE 70000
WORKDIR app
USER root
CMD python3 app.py
