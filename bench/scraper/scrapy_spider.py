"""The Scrapy peer: crawls from the seed, follows every link within the
allowed hosts, and writes the same two fields and the title as JSON lines
(run by run.py with `scrapy runspider`, robots.txt obeyed, AutoThrottle
off, 16 requests in flight in all and per domain)."""

import os

import scrapy


class BenchSpider(scrapy.Spider):
    name = "bench"

    def start_requests(self):
        yield scrapy.Request(os.environ["SEED"])

    def parse(self, response):
        yield {
            "url": response.url,
            "status": response.status,
            "title": response.xpath("//title/text()").get(),
            "price": response.xpath("//*[@id='price']/text()").get(),
            "sku": response.xpath("//span[@class='sku']/text()").get(),
        }
        for href in response.xpath("//a/@href").getall():
            yield response.follow(href, callback=self.parse)
